"""Reusable nodes and shared schemas: Context, state pieces, the model layer, the agent loop."""
