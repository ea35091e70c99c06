"""``minimq bench --cluster``: MiniMQ gateways over a 3-node JetStream cluster, against nats-py.

Layout (one concept per module):

- :mod:`~minimq.bench.cluster.nodes`: the NATS cluster (the node configuration of
  ``minimq up --cluster``) and the gateway processes, on free 127.0.0.1 ports in temp
  directories, stopped by PID;
- :mod:`~minimq.bench.cluster.lanes`: one load generator per gateway (HTTP) or per direct
  nats-py connection, each in its own process, started together;
- :mod:`~minimq.bench.cluster.latency`: end-to-end latency at a fixed rate through the gateways;
- :mod:`~minimq.bench.cluster.suite`: rounds, interleaving and collected results;
- :mod:`~minimq.bench.cluster.section`: the "Cluster (JetStream backend)" section of the report.
"""
