"""The HTTP adapter: XNAT's REST API (/data, /REST, /xapi). Handlers parse, call one service, render."""
