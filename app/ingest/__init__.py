"""The stream ingest: one reader per camera with a stream, spread over the ingest's replicas,
each sampled frame handed to the same frame path the API uses (app/common/frames.py)."""
