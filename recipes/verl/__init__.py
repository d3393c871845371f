"""verl 0.9.1 integration: agent loop, reward function, data preparation, configs, scripts.

`recipes.verl.reward` and `recipes.verl.data` need only this project (and pyarrow);
`recipes.verl.agent_loop` imports verl and is loaded by verl's rollout workers through
`config/agent_loop.yaml`. Nothing here imports verl at package import time.
"""

AGENT_NAME = "or_env"
DATA_SOURCE_PREFIX = "or_env/"
ABILITY = "operations_research"
