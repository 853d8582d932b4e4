"""Client-facing APIs besides Chat Completions, translated to and from the canonical
form: Anthropic Messages (``/v1/messages``), OpenAI Responses (``/v1/responses``)."""
