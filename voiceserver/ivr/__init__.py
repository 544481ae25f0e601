"""The IVR: flows and their interpreter, digit collection, prompts, numbers spoken, business
hours, the blacklist and the numbering plan."""
