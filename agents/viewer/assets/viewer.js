// or-env trajectory viewer: renders the run index and, on demand, one episode record.
// Every element is built with createElement / textContent: no data is parsed as HTML.
// The state lives in the URL fragment: #/?benchmark=..&outcome=..&q=..&sort=..&page=..
// for the list, #/episode/N?<same filters> for an episode (links can be shared).
(function () {
  "use strict";

  var PAGE_SIZE = 100;
  var MAX_LINES = 60; // code / output lines shown before "show all"
  var MAX_CHARS = 4000; // text characters shown before "show all"
  var FILTERS = ["benchmark", "outcome", "termination", "intervened", "final", "q"];
  var OUTCOME_LABELS = { correct: "correct", wrong: "not correct", error: "failed to run" };

  var started = performance.now();
  var index = JSON.parse(document.getElementById("run-index").textContent);
  var isCalm = index.kind === "calm";
  var rows = index.rows.map(function (values) {
    var row = {};
    for (var i = 0; i < index.columns.length; i++) row[index.columns[i]] = values[i];
    row.intervened = row.interventions > 0;
    return row;
  });
  var haystacks = null; // lower-cased problem texts, built on the first search
  var recordCache = new Map();
  var app = document.getElementById("app");
  var state = { view: "list", episode: 0, filters: {}, sort: "index", desc: false, page: 0 };

  // ------------------------------------------------------------------ helpers
  function el(tag, props) {
    var node = document.createElement(tag);
    if (props) {
      for (var key in props) {
        var value = props[key];
        if (value === null || value === undefined) continue;
        if (key === "class") node.className = value;
        else if (key === "text") node.textContent = String(value);
        else if (key.slice(0, 2) === "on") node.addEventListener(key.slice(2), value);
        else node.setAttribute(key, value);
      }
    }
    for (var i = 2; i < arguments.length; i++) append(node, arguments[i]);
    return node;
  }

  function append(node, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) {
      child.forEach(function (c) { append(node, c); });
    } else if (typeof child === "object" && child.nodeType) {
      node.appendChild(child);
    } else {
      node.appendChild(document.createTextNode(String(child)));
    }
  }

  function fmt(value, digits) {
    if (value === null || value === undefined) return "-";
    if (typeof value === "number") {
      if (Number.isInteger(value)) return String(value);
      return value.toFixed(digits === undefined ? 2 : digits);
    }
    if (typeof value === "object") return JSON.stringify(value);
    return String(value);
  }

  // A number to read, not to compute with: up to 6 significant digits, exponent when tiny.
  function num(value) {
    if (typeof value !== "number") return fmt(value);
    if (Number.isInteger(value) && Math.abs(value) < 1e15) return String(value);
    if (value !== 0 && (Math.abs(value) < 1e-4 || Math.abs(value) >= 1e15)) return value.toExponential(3);
    return String(Number(value.toPrecision(6)));
  }

  function relError(value) {
    if (typeof value !== "number") return fmt(value);
    return value === 0 ? "0" : String(Number(value.toPrecision(4))) + " (" + Number((100 * value).toPrecision(3)) + "%)";
  }

  function badge(text, kind) {
    return el("span", { class: "badge " + (kind || ""), text: text });
  }

  function section(title, id) {
    return el("section", { class: "card", id: id || null }, el("h2", { text: title }));
  }

  function facts(pairs, cls) {
    var box = el("div", { class: "facts " + (cls || "") });
    pairs.forEach(function (pair) {
      if (pair === null) return;
      box.appendChild(el("div", { class: "fact" }, el("div", { class: "label", text: pair[0] }), el("div", { class: "value" }, pair[1])));
    });
    return box;
  }

  function kvTable(pairs, cls) {
    var table = el("table", { class: "kv " + (cls || "") });
    pairs.forEach(function (pair) {
      if (pair === null) return;
      table.appendChild(el("tr", null, el("th", { text: pair[0] }), el("td", null, pair[1])));
    });
    return table;
  }

  function hashFor(view, episode, overrides) {
    var params = new URLSearchParams();
    var filters = Object.assign({}, state.filters, (overrides && overrides.filters) || {});
    FILTERS.forEach(function (name) {
      if (filters[name]) params.set(name, filters[name]);
    });
    var sort = overrides && overrides.sort !== undefined ? overrides.sort : state.sort;
    var desc = overrides && overrides.desc !== undefined ? overrides.desc : state.desc;
    var page = overrides && overrides.page !== undefined ? overrides.page : state.page;
    if (sort !== "index") params.set("sort", sort);
    if (desc) params.set("desc", "1");
    if (page) params.set("page", String(page));
    var query = params.toString();
    var path = view === "episode" ? "#/episode/" + episode : "#/";
    return path + (query ? "?" + query : "");
  }

  function parseHash() {
    var hash = location.hash.replace(/^#/, "") || "/";
    var cut = hash.indexOf("?");
    var path = cut < 0 ? hash : hash.slice(0, cut);
    var params = new URLSearchParams(cut < 0 ? "" : hash.slice(cut + 1));
    var filters = {};
    FILTERS.forEach(function (name) {
      var value = params.get(name);
      if (value) filters[name] = value;
    });
    var match = /^\/episode\/(\d+)$/.exec(path);
    state.view = match ? "episode" : "list";
    state.episode = match ? Number(match[1]) : 0;
    state.filters = filters;
    state.sort = params.get("sort") || "index";
    state.desc = params.get("desc") === "1";
    state.page = Math.max(0, Number(params.get("page")) || 0);
  }

  function go(hash) {
    if (location.hash === hash) route();
    else location.hash = hash;
  }

  // ------------------------------------------------------------------ filtering
  function matches(row, f, terms) {
    if (f.benchmark && row.benchmark !== f.benchmark) return false;
    if (f.outcome === "correct" && row.outcome !== "correct") return false;
    if (f.outcome === "wrong" && row.outcome === "correct") return false;
    if (f.outcome === "error" && row.outcome !== "error") return false;
    if (f.termination && row.termination !== f.termination) return false;
    if (f.intervened === "yes" && !row.intervened) return false;
    if (f.intervened === "no" && row.intervened) return false;
    if (f.final && row.final !== f.final) return false;
    if (terms.length) {
      var text = haystacks[row.problem];
      for (var i = 0; i < terms.length; i++) if (text.indexOf(terms[i]) < 0) return false;
    }
    return true;
  }

  function selected() {
    var f = state.filters;
    var terms = (f.q || "").toLowerCase().split(/\s+/).filter(Boolean);
    if (terms.length && haystacks === null) {
      haystacks = index.problems.map(function (text, i) {
        return (text + "\n" + index.problem_ids[i]).toLowerCase();
      });
    }
    var chosen = rows.filter(function (row) { return matches(row, f, terms); });
    var key = state.sort;
    var sign = state.desc ? -1 : 1;
    if (key !== "index" || state.desc) {
      chosen.sort(function (a, b) {
        var x = a[key], y = b[key];
        if (x === y) return a.index - b.index;
        if (x === null || x === undefined) return 1;
        if (y === null || y === undefined) return -1;
        return (x < y ? -1 : 1) * sign;
      });
    }
    return chosen;
  }

  function countRows(list) {
    var c = { outcomes: {}, termination_reasons: {}, failure_reasons: {}, execution_classes: {}, final_status: {} };
    list.forEach(function (row) {
      c.outcomes[row.outcome] = (c.outcomes[row.outcome] || 0) + 1;
      c.termination_reasons[row.termination] = (c.termination_reasons[row.termination] || 0) + 1;
      if (row.reason) c.failure_reasons[row.reason] = (c.failure_reasons[row.reason] || 0) + 1;
      for (var name in row.executions_by_class) {
        c.execution_classes[name] = (c.execution_classes[name] || 0) + row.executions_by_class[name];
      }
      if (row.status === "ok" && row.final !== null) {
        c.final_status[row.final] = (c.final_status[row.final] || 0) + 1;
      }
    });
    return c;
  }

  // ------------------------------------------------------------------ overview
  function renderHeader() {
    var header = el("header", { class: "top" },
      el("h1", null, el("a", { href: hashFor("list", 0, { filters: {} }), text: index.title })),
      el("div", { class: "sub" },
        badge(isCalm ? "CALM run" : "eval run", "kind"),
        " ", el("span", { class: "mono", text: index.name }), " · ",
        el("span", { id: "episode-total", text: String(index.counts.episodes) }), " episodes, ",
        String(index.counts.problems), " problems",
        isCalm ? " · " + index.counts.intervened + " intervened, " + index.counts.kept + " kept" : ""));
    return header;
  }

  function renderSpans(spans) {
    return spans.map(function (span) {
      if (span[0] === "code") return el("code", { text: span[1] });
      if (span[0] === "strong") return el("strong", { text: span[1] });
      return document.createTextNode(span[1]);
    });
  }

  function renderReport(blocks) {
    // The report's head (up to the first heading after a table) is shown; the rest folds away.
    var box = el("div", { class: "report" });
    var more = el("details", { class: "more-report" }, el("summary", { text: "the rest of the report" }));
    var target = box;
    var tables = 0;
    blocks.forEach(function (block) {
      if (block.type === "heading" && tables > 0) target = more;
      if (block.type === "table") tables++;
      if (block.type === "heading") {
        if (block.level === 1) return; // the page title says it
        target.appendChild(el("h3", null, renderSpans(block.spans)));
      } else if (block.type === "paragraph") {
        target.appendChild(el("p", null, renderSpans(block.spans)));
      } else if (block.type === "table") {
        var table = el("table", { class: "grid" });
        table.appendChild(el("thead", null, el("tr", null, block.header.map(function (cell) {
          return el("th", null, renderSpans(cell));
        }))));
        var body = el("tbody");
        block.rows.forEach(function (cells) {
          body.appendChild(el("tr", null, cells.map(function (cell) {
            return el("td", null, renderSpans(cell));
          })));
        });
        table.appendChild(body);
        target.appendChild(el("div", { class: "scroll" }, table));
      } else if (block.type === "image" && /^data:image\/png;base64,[A-Za-z0-9+\/=]+$/.test(block.src)) {
        target.appendChild(el("img", { class: "plot", src: block.src, alt: block.alt }));
      }
    });
    if (target === more) box.appendChild(more);
    return box;
  }

  function settingText(value) {
    if (value === null || value === undefined) return "-";
    if (typeof value !== "object") return String(value);
    if (Array.isArray(value)) return value.map(settingText).join(", ");
    return Object.keys(value).map(function (key) { return key + ": " + settingText(value[key]); }).join("\n");
  }

  function settingValue(value) {
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      return el("span", { class: "mono", text: settingText(value) });
    }
    // A described policy or judge: its name, the rest folded.
    var name = value.model || value.source || value.policy || value.intervener;
    var keys = Object.keys(value).length;
    return el("details", { class: "setting" },
      el("summary", { class: "mono", text: (name ? String(name) + " · " : "") + keys + " settings" }),
      el("div", { class: "mono text", text: settingText(value) }));
  }

  function renderSettings() {
    var pairs = [];
    var seen = {};
    [index.settings, index.config].forEach(function (source) {
      for (var key in source) {
        if (seen[key]) continue;
        seen[key] = true;
        pairs.push([key, settingValue(source[key])]);
      }
    });
    return kvTable(pairs, "settings");
  }

  function countTable(title, all, shown, filterName, labels) {
    var names = Object.keys(all);
    Object.keys(shown).forEach(function (name) { if (names.indexOf(name) < 0) names.push(name); });
    var table = el("table", { class: "counts", "data-counts": title });
    table.appendChild(el("thead", null, el("tr", null,
      el("th", { text: title }), el("th", { text: "all" }), el("th", { text: "shown" }))));
    var body = el("tbody");
    names.forEach(function (name) {
      var shownName = (labels && labels[name]) || name;
      var label = filterName
        ? el("a", { href: hashFor("list", 0, { filters: filterValue(filterName, name), page: 0 }), text: shownName })
        : shownName;
      body.appendChild(el("tr", { "data-name": name },
        el("td", null, label),
        el("td", { class: "num", text: String(all[name] || 0) }),
        el("td", { class: "num", text: String(shown[name] || 0) })));
    });
    if (!names.length) body.appendChild(el("tr", null, el("td", { colspan: "3", class: "muted", text: "none" })));
    table.appendChild(body);
    return table;
  }

  function filterValue(name, value) {
    var f = {};
    f[name] = value;
    return f;
  }

  function renderCounts(list) {
    var shown = countRows(list);
    var all = index.counts;
    var box = el("div", { class: "count-grid" },
      countTable("outcome", all.outcomes, shown.outcomes, "outcome", OUTCOME_LABELS),
      countTable("termination reason", all.termination_reasons, shown.termination_reasons, "termination"),
      countTable("failure reason", all.failure_reasons, shown.failure_reasons, null),
      countTable("execution class", all.execution_classes, shown.execution_classes, null));
    if (isCalm) box.appendChild(countTable("final judgement", all.final_status || {}, shown.final_status, "final"));
    return box;
  }

  function select(name, label, options, labels) {
    var node = el("select", { id: "filter-" + name, "aria-label": label });
    node.appendChild(el("option", { value: "", text: label + ": any" }));
    options.forEach(function (value) {
      var option = el("option", { value: value, text: (labels && labels[value]) || value });
      node.appendChild(option);
    });
    node.value = state.filters[name] || "";
    node.addEventListener("change", function () {
      var f = filterValue(name, node.value);
      go(hashFor("list", 0, { filters: f, page: 0 }));
    });
    return node;
  }

  function renderFilters(count) {
    var search = el("input", {
      id: "filter-q", type: "search", placeholder: "search the problems (/)",
      "aria-label": "search the problems", autocomplete: "off"
    });
    search.value = state.filters.q || "";
    search.addEventListener("input", function () {
      // Replace the history entry while typing; render at once (the filter is fast).
      var hash = hashFor("list", 0, { filters: { q: search.value }, page: 0 });
      history.replaceState(null, "", hash);
      parseHash();
      renderList(true);
    });
    var facets = index.facets;
    var bar = el("div", { class: "filters" },
      select("benchmark", "benchmark", facets.benchmark),
      select("outcome", "outcome", ["correct", "wrong", "error"], OUTCOME_LABELS),
      select("termination", "termination", facets.termination),
      isCalm ? select("intervened", "intervened", ["yes", "no"]) : null,
      isCalm ? select("final", "final judgement", facets.final) : null,
      search,
      el("a", { href: hashFor("list", 0, { filters: { benchmark: "", outcome: "", termination: "", intervened: "", final: "", q: "" }, page: 0 }), class: "reset", text: "reset" }),
      el("span", { class: "shown" },
        el("strong", { id: "shown-count", text: String(count) }), " of " + rows.length + " episodes"));
    return bar;
  }

  var COLUMNS = [
    ["index", "#", "num"],
    ["problem_id", "problem", ""],
    ["benchmark", "benchmark", ""],
    ["sample", "sample", "num"],
    ["outcome", "outcome", ""],
    ["termination", "termination", ""],
    ["turns", "turns", "num"],
    ["executions", "executions", "num"],
    ["reward", "reward", "num"],
    ["wall_s", "wall s", "num"]
  ];
  if (isCalm) {
    COLUMNS.push(["interventions", "hints", "num"]);
    COLUMNS.push(["final", "final judgement", ""]);
  }

  function renderTable(list) {
    var pages = Math.max(1, Math.ceil(list.length / PAGE_SIZE));
    var page = Math.min(state.page, pages - 1);
    var head = el("tr", null, COLUMNS.map(function (col) {
      var active = state.sort === col[0];
      var arrow = active ? (state.desc ? " ▼" : " ▲") : "";
      var link = el("a", {
        href: hashFor("list", 0, { sort: col[0], desc: active ? !state.desc : false, page: 0 }),
        text: col[1] + arrow, "data-sort": col[0]
      });
      return el("th", { class: col[2] + (active ? " sorted" : "") }, link);
    }));
    var body = el("tbody", { id: "episode-rows" });
    list.slice(page * PAGE_SIZE, (page + 1) * PAGE_SIZE).forEach(function (row) {
      var href = hashFor("episode", row.index);
      var tr = el("tr", { class: "row " + row.outcome, "data-index": String(row.index) },
        el("td", { class: "num", text: String(row.index) }),
        el("td", { class: "mono" }, el("a", { href: href, text: row.problem_id })),
        el("td", { text: row.benchmark }),
        el("td", { class: "num", text: String(row.sample) }),
        el("td", null, badge(OUTCOME_LABELS[row.outcome], row.outcome)),
        el("td", { text: row.termination }),
        el("td", { class: "num", text: row.generated_turns !== row.turns ? row.turns + " (" + row.generated_turns + ")" : String(row.turns) }),
        el("td", { class: "num", text: String(row.executions) }),
        el("td", { class: "num", text: fmt(row.reward) }),
        el("td", { class: "num", text: fmt(row.wall_s) }),
        isCalm ? el("td", { class: "num", text: String(row.interventions) }) : null,
        isCalm ? el("td", null, row.final ? badge(row.final, "final-" + row.final) : "-") : null);
      tr.addEventListener("click", function (event) {
        if (event.target.tagName !== "A") go(href);
      });
      body.appendChild(tr);
    });
    var table = el("table", { class: "episodes" }, el("thead", null, head), body);
    var pager = el("div", { class: "pager" },
      page > 0 ? el("a", { href: hashFor("list", 0, { page: page - 1 }), text: "‹ previous" }) : el("span", { class: "muted", text: "‹ previous" }),
      el("span", { text: " page " + (page + 1) + " of " + pages + " " }),
      page + 1 < pages ? el("a", { href: hashFor("list", 0, { page: page + 1 }), text: "next ›" }) : el("span", { class: "muted", text: "next ›" }));
    return el("div", null, el("div", { class: "scroll" }, table), pager);
  }

  var listParts = null;

  function renderList(keepFilters) {
    var list = selected();
    if (keepFilters && listParts) {
      // Typing in the search box: keep the box (and its focus), redraw the rest.
      listParts.count.textContent = String(list.length);
      listParts.counts.replaceWith(listParts.counts = renderCounts(list));
      listParts.table.replaceWith(listParts.table = renderTable(list));
      return;
    }
    app.textContent = "";
    app.appendChild(renderHeader());
    var overview = section("Overview", "overview");
    overview.appendChild(el("div", { class: "two" },
      el("div", null, el("h3", { text: "Settings" }), renderSettings()),
      el("div", { class: "grow" }, renderReport(index.report))));
    app.appendChild(overview);
    var filters = renderFilters(list.length);
    var counts = renderCounts(list);
    var table = renderTable(list);
    var episodes = section("Episodes", "episodes");
    episodes.appendChild(filters);
    episodes.appendChild(counts);
    episodes.appendChild(table);
    app.appendChild(episodes);
    listParts = { count: document.getElementById("shown-count"), counts: counts, table: table };
  }

  // ------------------------------------------------------------------ episode
  function record(i) {
    if (recordCache.has(i)) return recordCache.get(i);
    var node = document.getElementById("e" + i);
    if (!node) return null;
    var value = JSON.parse(node.textContent);
    if (recordCache.size > 20) recordCache.delete(recordCache.keys().next().value);
    recordCache.set(i, value);
    return value;
  }

  // A message's text as segments: reasoning (<think>), fenced code blocks, plain text.
  function segments(text) {
    var out = [];
    var rest = text;
    var close = rest.indexOf("</think>");
    var open = rest.indexOf("<think>");
    if (close >= 0 && (open < 0 || open > close)) {
      // The reasoning began before this text (the template opened <think>).
      out.push({ kind: "think", body: rest.slice(0, close) });
      rest = rest.slice(close + 8);
    }
    var re = /<think>([\s\S]*?)(<\/think>|$)/g;
    var last = 0;
    var match;
    while ((match = re.exec(rest)) !== null) {
      if (match.index > last) fences(rest.slice(last, match.index), out);
      out.push({ kind: "think", body: match[1], unclosed: match[2] === "" });
      last = re.lastIndex;
      if (match[0].length === 0) break;
    }
    if (last < rest.length) fences(rest.slice(last), out);
    return out;
  }

  function fences(text, out) {
    var lines = text.split("\n");
    var buffer = [];
    var i = 0;
    function flush() {
      var body = buffer.join("\n");
      if (body.trim()) out.push({ kind: "text", body: body.replace(/^\n+|\s+$/g, "") });
      buffer = [];
    }
    while (i < lines.length) {
      var fence = /^\s*```\s*([\w+#.-]*)\s*$/.exec(lines[i]);
      if (!fence) {
        buffer.push(lines[i]);
        i++;
        continue;
      }
      flush();
      var code = [];
      i++;
      while (i < lines.length && !/^\s*```\s*$/.test(lines[i])) {
        code.push(lines[i]);
        i++;
      }
      out.push({ kind: "code", lang: fence[1] || "text", body: code.join("\n"), unclosed: i >= lines.length });
      i++;
    }
    flush();
  }

  function codeBlock(lang, body, note) {
    var lines = body.split("\n");
    var box = el("div", { class: "code lang-" + lang.replace(/[^\w-]/g, "") });
    box.appendChild(el("div", { class: "code-head" },
      el("span", { text: lang }), el("span", { class: "muted", text: lines.length + (lines.length === 1 ? " line" : " lines") }),
      note || null));
    var holder = el("div", { class: "code-body" });
    function fill(count) {
      holder.textContent = "";
      var shown = lines.slice(0, count);
      var numbers = [];
      for (var n = 1; n <= shown.length; n++) numbers.push(n);
      holder.appendChild(el("pre", { class: "gutter", "aria-hidden": "true", text: numbers.join("\n") }));
      holder.appendChild(el("pre", { class: "src", text: shown.join("\n") }));
    }
    fill(Math.min(lines.length, lines.length > MAX_LINES + 10 ? MAX_LINES : lines.length));
    box.appendChild(holder);
    if (lines.length > MAX_LINES + 10) {
      var more = el("button", { class: "more", type: "button", text: "show all " + lines.length + " lines (" + (lines.length - MAX_LINES) + " more)" });
      more.addEventListener("click", function () { fill(lines.length); more.remove(); });
      box.appendChild(more);
    }
    return box;
  }

  function textBlock(body, cls, limit) {
    var cap = limit || MAX_CHARS;
    var box = el("div", { class: "text " + (cls || "") });
    if (body.length <= cap + 500) {
      box.textContent = body;
      return box;
    }
    box.textContent = body.slice(0, cap) + " …";
    var wrapper = el("div", null, box);
    var more = el("button", { class: "more", type: "button", text: "show all " + body.length + " characters" });
    more.addEventListener("click", function () { box.textContent = body; more.remove(); });
    wrapper.appendChild(more);
    return wrapper;
  }

  function renderContent(text, execNote) {
    var box = el("div", { class: "content" });
    segments(text).forEach(function (seg) {
      if (seg.kind === "think") {
        var details = el("details", { class: "think" },
          el("summary", { text: "reasoning (" + seg.body.trim().length + " characters" + (seg.unclosed ? ", unfinished" : "") + ")" }));
        details.appendChild(textBlock(seg.body.trim(), "think-text"));
        box.appendChild(details);
      } else if (seg.kind === "code") {
        box.appendChild(codeBlock(seg.lang, seg.body, seg.lang === "output" ? execNote : null));
      } else {
        box.appendChild(textBlock(seg.body));
      }
    });
    if (!box.childNodes.length) box.appendChild(el("div", { class: "muted", text: "(empty)" }));
    return box;
  }

  function stepFor(rec, turn) {
    var steps = rec.steps || [];
    for (var i = steps.length - 1; i >= 0; i--) {
      if (steps[i].turn === turn && steps[i].action_kind !== "intervention") return steps[i];
    }
    return null;
  }

  function execClass(ex) {
    if (ex.sandbox_error || ex.failure) return "sandbox_" + (ex.failure || "error");
    if (ex.timed_out) return "timeout";
    if (ex.exit_code === 0) return "ok";
    return "program_error";
  }

  function execNote(ex) {
    if (!ex) return null;
    var cls = execClass(ex);
    var parts = [cls, "exit " + fmt(ex.exit_code), fmt(ex.wall_s, 3) + " s"];
    if (ex.truncated) parts.push("output truncated");
    if (ex.sandbox_error) parts.push(ex.sandbox_error);
    return el("span", { class: "exec " + cls, text: parts.join(" · ") });
  }

  function stepMeta(step) {
    if (!step) return null;
    var parts = ["latency " + fmt(step.latency_s, 3) + " s"];
    if (step.prompt_tokens !== null || step.completion_tokens !== null) {
      parts.push("tokens " + fmt(step.prompt_tokens) + " in / " + fmt(step.completion_tokens) + " out");
    }
    if (step.finish_reason) parts.push("finish " + step.finish_reason);
    if (step.attempts > 1) parts.push(step.attempts + " attempts");
    if (step.action_kind) parts.push(step.action_kind);
    return el("span", { class: "meta", text: parts.join(" · ") });
  }

  function messageCard(rec, message, options) {
    options = options || {};
    var source = message.source || "env";
    var step = source === "policy" && !options.dropped ? stepFor(rec, message.turn) : null;
    var envStep = source === "env" && !options.dropped ? stepFor(rec, message.turn) : null;
    var card = el("div", { class: "msg " + source + (options.dropped ? " dropped" : ""), "data-source": source, "data-turn": String(message.turn) });
    card.appendChild(el("div", { class: "msg-head" },
      badge(source, "src-" + source), " ",
      el("span", { class: "muted", text: message.role + " · turn " + message.turn + (step ? " · " : "") }),
      stepMeta(step)));
    if (step && step.reasoning && (message.content || "").indexOf("</think>") < 0) {
      var details = el("details", { class: "think" }, el("summary", { text: "reasoning (server-side, " + step.reasoning.length + " characters)" }));
      details.appendChild(textBlock(step.reasoning, "think-text"));
      card.appendChild(details);
    }
    var note = envStep ? execNote(envStep.execution) : null;
    if (message.role === "tool") {
      // A tool result (tools rendering): the program's output, shown as an output block.
      card.appendChild(el("div", { class: "content" }, codeBlock("output", message.content || "", note)));
    } else if (message.content || !message.tool_calls) {
      card.appendChild(renderContent(message.content || "", note));
    }
    (message.tool_calls || []).forEach(function (call) { card.appendChild(toolCallBlock(call)); });
    return card;
  }

  function toolCallBlock(call) {
    var fn = (call && call.function) || {};
    var args = fn.arguments;
    var parsed = null;
    if (typeof args === "string") {
      try { parsed = JSON.parse(args); } catch (e) { parsed = null; }
    } else if (args && typeof args === "object") {
      parsed = args;
    }
    var box = el("div", { class: "content tool-call", "data-tool": String(fn.name || "") });
    box.appendChild(el("div", { class: "muted", text: "tool call " + String(fn.name || "(no name)") + (call && call.id ? " · " + call.id : "") }));
    if (fn.name === "run_python" && parsed && typeof parsed.code === "string") {
      box.appendChild(codeBlock("python", parsed.code, null));
    } else if (fn.name === "submit_answer" && parsed && parsed.answer !== undefined) {
      box.appendChild(el("div", { class: "mono submitted", text: "submit_answer: " + String(parsed.answer) }));
    } else {
      box.appendChild(textBlock(typeof args === "string" ? args : JSON.stringify(args)));
    }
    return box;
  }

  function gradeCard(rec) {
    var grade = rec.grade || {};
    var ok = rec.correct;
    var verdict = rec.status !== "ok" ? badge("failed to run", "error") : badge(ok ? "correct" : "not correct", ok ? "correct" : "wrong");
    var pairs = [
      ["verdict", verdict],
      ["answer", el("span", { class: "mono", id: "answer", text: fmt(rec.answer) })],
      ["ground truth", el("span", { class: "mono", id: "ground-truth", text: num(rec.ground_truth) })],
      ["predicted", el("span", { class: "mono", text: num(grade.predicted) })],
      ["grade", el("span", { id: "grade-reason", text: grade.reason || "-" })],
      ["relative error", el("span", { class: "mono", id: "rel-error", text: relError(grade.rel_error) })],
      ["absolute error", el("span", { class: "mono", text: num(grade.abs_error) })],
      ["tolerance", grade.tolerance || rec.tolerance || "-"],
      ["termination", rec.termination_reason || "-"],
      ["reward", fmt(rec.reward)]
    ];
    if (grade.raw_answer !== null && grade.raw_answer !== undefined) pairs.splice(3, 0, ["raw answer", el("span", { class: "mono", text: String(grade.raw_answer) })]);
    return facts(pairs, "grade");
  }

  function runCard(rec) {
    var t = rec.timings || {};
    var tokens = rec.tokens || {};
    var policy = rec.policy || {};
    var pairs = [
      ["benchmark", (rec.benchmark || "-") + (rec.version ? " @ " + rec.version : "")],
      ["sample · seed", fmt(rec.sample) + " · " + fmt(rec.seed)],
      ["status", rec.status],
      ["turns", fmt(rec.turns) + (rec.generated_turns !== rec.turns ? " (" + rec.generated_turns + " generated)" : "")],
      ["executions", fmt(rec.executions)],
      ["wall · policy · env", fmt(t.wall_s) + " s · " + fmt(t.policy_s) + " s · " + fmt(t.env_s) + " s"],
      ["tokens in · out", fmt(tokens.prompt) + " · " + fmt(tokens.completion)],
      ["policy", el("span", { class: "mono", text: fmt(policy.model || policy.source || policy.policy) })],
      ["protocol · rendering", fmt(rec.protocol) + " · " + fmt(rec.rendering)],
      ["started", fmt(t.started_at)]
    ];
    if (rec.calm) {
      pairs.push(["CALM final", badge(rec.calm.final, "final-" + rec.calm.final)]);
      pairs.push(["hints", String((rec.calm.interventions || []).length)]);
    }
    return facts(pairs, "run");
  }

  function judgementBlock(j, title) {
    var box = el("div", { class: "judgement status-" + j.status, "data-judgement": j.status });
    var parts = ["step " + j.step, "trigger " + j.trigger, "after turn " + j.turns, j.attempts + (j.attempts === 1 ? " reply" : " replies")];
    if (j.latency_s !== undefined) parts.push(fmt(j.latency_s, 3) + " s");
    if (j.prompt_tokens !== undefined && j.prompt_tokens !== null) parts.push("tokens " + fmt(j.prompt_tokens) + " in / " + fmt(j.completion_tokens) + " out");
    box.appendChild(el("div", { class: "msg-head" }, badge("judge", "src-judge"), " ", el("strong", { text: title + ": " + j.status }), " ", el("span", { class: "meta", text: parts.join(" · ") })));
    (j.replies || []).forEach(function (reply, k) {
      var error = (j.errors || [])[k];
      var item = el("div", { class: "reply" }, el("div", { class: "muted", text: "reply " + (k + 1) + (error ? " — rejected: " + error : "") }));
      item.appendChild(textBlock(String(reply), "mono"));
      box.appendChild(item);
    });
    var extra = (j.errors || []).slice((j.replies || []).length);
    extra.forEach(function (error) { box.appendChild(el("div", { class: "reject", text: "error: " + error })); });
    return box;
  }

  function interventionCard(rec, iv, superseded) {
    var judgement = (rec.calm.judgements || []).filter(function (j) { return j.step === iv.step; })[0];
    var before = iv.outcome_before;
    var card = el("div", { class: "intervention", "data-intervention": String(iv.index) });
    card.appendChild(el("div", { class: "msg-head" },
      badge("intervention " + iv.index, "src-intervener"), " ",
      el("strong", { class: "flaw", text: iv.flaw_type || "-" }),
      el("span", { class: "muted", text: (iv.category ? " (" + iv.category + ")" : "") + " · flawed turn " + iv.flawed_turn + ", rewound to turn " + iv.rewound_to + " · trigger " + iv.trigger + " after step " + iv.step }),
      superseded ? el("span", { class: "muted", text: " · its hint was dropped by a later intervention" }) : null));
    var pairs = [["hint", el("span", { class: "hint", text: iv.hint })]];
    if (iv.rationale) pairs.push(["rationale", iv.rationale]);
    if (before) {
      pairs.push(["outcome discarded", (before.termination_reason || "-") + " · answer " + fmt(before.answer) + " · " + (before.correct ? "correct" : "not correct")]);
    }
    card.appendChild(kvTable(pairs, "iv"));
    var dropped = iv.dropped || [];
    if (dropped.length) {
      var details = el("details", { class: "dropped-turns", open: "" },
        el("summary", { text: dropped.length + " message" + (dropped.length === 1 ? "" : "s") + " dropped by the rewind (turn " + iv.flawed_turn + " on)" }));
      dropped.forEach(function (m) { details.appendChild(messageCard(rec, m, { dropped: true })); });
      card.appendChild(details);
    }
    if (judgement) card.appendChild(judgementBlock(judgement, "judgement"));
    return card;
  }

  function renderTrajectory(rec, box) {
    var messages = rec.messages || [];
    var interventions = (rec.calm && rec.calm.interventions) || [];
    var used = {};
    // Which intervener message each intervention wrote (a later rewind may drop one).
    var place = {};
    interventions.forEach(function (iv, k) {
      for (var i = 0; i < messages.length; i++) {
        if (!used[i] && messages[i].source === "intervener" && messages[i].content === iv.text) {
          used[i] = true;
          place[i] = k;
          return;
        }
      }
    });
    var pending = [];
    var start = 0;
    while (start < messages.length && messages[start].source === "env" && messages[start].turn === 0) start++;
    for (var i = start; i < messages.length; i++) {
      if (place[i] !== undefined) {
        var k = place[i];
        // Interventions whose hint a later one dropped come just before it.
        for (var p = 0; p < k; p++) {
          if (pending.indexOf(p) < 0 && Object.keys(place).map(function (key) { return place[key]; }).indexOf(p) < 0) {
            box.appendChild(interventionCard(rec, interventions[p], true));
            pending.push(p);
          }
        }
        box.appendChild(interventionCard(rec, interventions[k], false));
        pending.push(k);
      }
      box.appendChild(messageCard(rec, messages[i]));
    }
    interventions.forEach(function (iv, k) {
      if (pending.indexOf(k) < 0) box.appendChild(interventionCard(rec, iv, true));
    });
    if (!messages.length) box.appendChild(el("div", { class: "muted", text: "(no messages)" }));
  }

  function stepsTable(rec) {
    var steps = rec.steps || [];
    var table = el("table", { class: "grid steps" });
    table.appendChild(el("thead", null, el("tr", null, ["step", "turn", "kind", "latency s", "env s", "tokens in", "tokens out", "finish", "execution", "rewound to"].map(function (h) {
      return el("th", { text: h });
    }))));
    var body = el("tbody");
    steps.forEach(function (s, k) {
      body.appendChild(el("tr", null,
        el("td", { class: "num", text: String(k + 1) }),
        el("td", { class: "num", text: fmt(s.turn) }),
        el("td", { text: fmt(s.action_kind) }),
        el("td", { class: "num", text: fmt(s.latency_s, 3) }),
        el("td", { class: "num", text: fmt(s.env_s, 3) }),
        el("td", { class: "num", text: fmt(s.prompt_tokens) }),
        el("td", { class: "num", text: fmt(s.completion_tokens) }),
        el("td", { text: fmt(s.finish_reason) }),
        el("td", null, s.execution ? execNote(s.execution) : "-"),
        el("td", { class: "num", text: fmt(s.rewound_to) })));
    });
    table.appendChild(body);
    return el("div", { class: "scroll" }, table);
  }

  function renderEpisode() {
    var i = state.episode;
    var row = rows[i];
    app.textContent = "";
    listParts = null;
    app.appendChild(renderHeader());
    if (!row) {
      app.appendChild(el("p", { class: "error-box", text: "No episode " + i + " in this run." }));
      return;
    }
    var rec = record(i);
    if (!rec) {
      app.appendChild(el("p", { class: "muted", text: "loading episode " + i + " …" }));
      document.addEventListener("DOMContentLoaded", route, { once: true });
      return;
    }
    var list = selected();
    var at = list.findIndex(function (r) { return r.index === i; });
    var prev = at > 0 ? list[at - 1].index : null;
    var next = at >= 0 && at + 1 < list.length ? list[at + 1].index : null;
    var back = hashFor("list", 0, { page: at >= 0 ? Math.floor(at / PAGE_SIZE) : state.page });
    app.appendChild(el("nav", { class: "epnav" },
      el("a", { href: back, id: "back", text: "← all episodes" }),
      prev !== null ? el("a", { href: hashFor("episode", prev), id: "prev", text: "‹ previous" }) : el("span", { class: "muted", text: "‹ previous" }),
      el("span", { class: "muted", text: at >= 0 ? (at + 1) + " of " + list.length + " shown" : "not among the filtered episodes" }),
      next !== null ? el("a", { href: hashFor("episode", next), id: "next", text: "next ›" }) : el("span", { class: "muted", text: "next ›" }),
      el("span", { class: "muted keys", text: "keys: j / k next / previous, u back" })));

    var head = section("Episode " + i + ": " + rec.problem_id, "episode");
    head.setAttribute("data-problem-id", rec.problem_id);
    if (rec.status !== "ok") head.appendChild(el("div", { class: "error-box", text: rec.error || "failed" }));
    head.appendChild(el("h3", { text: "Answer and grade" }));
    head.appendChild(gradeCard(rec));
    head.appendChild(el("h3", { text: "Episode" }));
    head.appendChild(runCard(rec));
    app.appendChild(head);

    var problem = section("Problem", "problem");
    var messages = rec.messages || [];
    for (var m = 0; m < messages.length && messages[m].source === "env" && messages[m].turn === 0; m++) {
      var msg = messages[m];
      if (msg.role === "system") {
        problem.appendChild(el("details", { class: "system" }, el("summary", { text: "system prompt (" + msg.content.length + " characters)" }), textBlock(msg.content)));
      } else {
        problem.appendChild(el("div", { class: "msg env prompt", "data-source": "env" }, textBlock(msg.content, "", 1200)));
      }
    }
    app.appendChild(problem);

    var trajectory = section("Trajectory", "trajectory");
    trajectory.appendChild(el("div", { class: "legend" }, badge("policy", "src-policy"), " ", badge("env", "src-env"),
      rec.calm ? [" ", badge("intervener", "src-intervener"), " ", badge("judge", "src-judge")] : null));
    renderTrajectory(rec, trajectory);
    app.appendChild(trajectory);

    if (rec.calm) {
      var judge = section("Judge", "judge");
      var judgements = rec.calm.judgements || [];
      judgements.forEach(function (j, k) {
        judge.appendChild(judgementBlock(j, k === judgements.length - 1 ? "final judgement" : "judgement " + (k + 1)));
      });
      judge.appendChild(el("p", null, "Final status: ", badge(rec.calm.final, "final-" + rec.calm.final), rec.calm.final === "flawless" && rec.correct ? " · kept" : " · not kept"));
      app.appendChild(judge);
    }

    var steps = section("Steps (every generated turn)", "steps");
    steps.appendChild(stepsTable(rec));
    var raw = el("details", { class: "raw" }, el("summary", { text: "raw record (JSON)" }));
    raw.addEventListener("toggle", function () {
      if (raw.open && raw.childNodes.length === 1) raw.appendChild(codeBlock("json", JSON.stringify(rec, null, 2)));
    });
    steps.appendChild(raw);
    app.appendChild(steps);
    window.scrollTo(0, 0);
  }

  // ------------------------------------------------------------------ routing
  function route() {
    parseHash();
    if (state.view === "episode") renderEpisode();
    else renderList(false);
    document.documentElement.setAttribute("data-view", state.view);
    document.documentElement.setAttribute("data-ready", "1");
  }

  window.addEventListener("hashchange", route);
  document.addEventListener("keydown", function (event) {
    var tag = (event.target && event.target.tagName) || "";
    if (tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA" || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "/" && state.view === "list") {
      var box = document.getElementById("filter-q");
      if (box) { event.preventDefault(); box.focus(); }
    } else if (state.view === "episode") {
      var target = { j: "next", ArrowRight: "next", k: "prev", ArrowLeft: "prev", u: "back", Escape: "back" }[event.key];
      var link = target && document.getElementById(target);
      if (link) { event.preventDefault(); location.hash = link.getAttribute("href"); }
    }
  });
  route();
  document.documentElement.setAttribute("data-ready-ms", String(Math.round(performance.now())));
  document.documentElement.setAttribute("data-script-ms", String(Math.round(performance.now() - started)));
})();
