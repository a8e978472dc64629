"""The faust app: riskwatch's stream processors on Apache Kafka.

A thin shell around the core engine (`riskwatch.engine`): agents decode raw
bytes with the core parser, call the engine, and send what it returns. See
docs/streams.md for the topology and its guarantees.
"""
