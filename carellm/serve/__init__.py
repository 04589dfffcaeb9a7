"""`carellm serve`: an OpenAI-compatible chat-completions server with an emotion/safety
extension. ``routes`` builds the FastAPI app, ``request`` parses OpenAI messages into
turns, ``response`` shapes completions, chunks and errors as OpenAI clients expect.
"""

from carellm.serve.routes import check_bind, create_app, running, serve

__all__ = ["check_bind", "create_app", "running", "serve"]
