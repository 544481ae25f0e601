"""The call core: the media engine, channel state machines, the event bus, call ids and the server that runs them."""
