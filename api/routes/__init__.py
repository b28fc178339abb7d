"""One router per case type or audience; `api.http.create_app` includes them all."""
