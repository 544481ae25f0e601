"""The voiceboard subcommands that belong to the voice server (serve, demo, reload, agent, queues, calls, rules)."""
