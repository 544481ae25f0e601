"""The ACD: agents, queues, distribution strategies, hunt groups, and the link that carries
its decisions onto channels."""
