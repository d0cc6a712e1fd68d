"""Long-term memory over LangGraph's BaseStore (Qdrant by default) and context management."""
