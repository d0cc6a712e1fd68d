"""Server-side pieces `langgraph.json` points at: auth handler, approvals inbox, store embedder."""
