"""Cut one NATS node off from the others on loopback: cgroup v2 + an nftables table.

All nodes listen on 127.0.0.1, so neither addresses nor (for the connections a node opens
itself, from ephemeral ports) port numbers tell which node a packet belongs to.  The socket's
cgroup does: every node is started through a small wrapper that moves it into a cgroup of its
own before it opens any socket, and nftables' ``socket cgroupv2`` match then drops, for the
isolated node ``X`` only, route (cluster-port) traffic in both directions:

- output from X's sockets to another node's cluster port, and from X's cluster port;
- input to X's sockets from another node's cluster port, and to X's cluster port.

Client ports stay open: a gateway connected only to X still reaches X, and a client can observe
that X acknowledges nothing.  The rules live in one nftables table of their own (named per run)
and are removed by :meth:`LoopbackPartition.close`, whatever happened; other rules on the
machine are never touched.  Needs root, nftables with ``socket cgroupv2`` and a writable cgroup
v2 hierarchy under ``/sys/fs/cgroup``; :func:`check_supported` fails loudly, saying which is
missing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import uuid
from pathlib import Path

from tests.support.nats_cluster import NatsCluster

NFT_CGROUP_ROOT = Path("/sys/fs/cgroup")  # nft resolves `socket cgroupv2` paths below this


def cgroup2_mount() -> Path:
    """Where the cgroup v2 hierarchy is mounted (``/sys/fs/cgroup`` or ``.../unified``)."""
    for line in Path("/proc/mounts").read_text().splitlines():
        fields = line.split()
        if len(fields) > 2 and fields[2] == "cgroup2":
            return Path(fields[1])
    raise RuntimeError("no cgroup v2 hierarchy is mounted (needed to tell nodes' sockets apart)")


def check_supported() -> None:
    """Raise, saying what is missing, unless cgroup v2 and nftables can partition here."""
    problems = []
    if os.geteuid() != 0:
        problems.append("not root (nftables rules and cgroups need root)")
    if shutil.which("nft") is None:
        problems.append("`nft` is not installed (apt-get install nftables)")
    try:
        mount = cgroup2_mount()
        if NFT_CGROUP_ROOT not in (mount, *mount.parents):
            problems.append(f"cgroup v2 is mounted at {mount}, not below {NFT_CGROUP_ROOT}")
        elif not os.access(mount, os.W_OK):
            problems.append(f"cgroup v2 at {mount} is not writable")
    except (OSError, RuntimeError) as exc:
        problems.append(str(exc))
    if problems:
        raise RuntimeError("cannot partition the network here: " + "; ".join(problems))


class LoopbackPartition:
    """Install with :meth:`install` BEFORE the cluster starts; then :meth:`isolate`/:meth:`heal`."""

    def __init__(self, workdir: Path) -> None:
        check_supported()
        self.run_id = uuid.uuid4().hex[:10]
        self.mount = cgroup2_mount()
        self.group_root = self.mount / f"minimq-test-{self.run_id}"
        self.table = f"minimq_partition_{self.run_id}"
        self.workdir = workdir
        self.cluster: NatsCluster | None = None
        self._table_added = False

    def install(self, cluster: NatsCluster) -> None:
        """Make every node of ``cluster`` start inside a cgroup of its own."""
        self.group_root.mkdir()
        wrapper = self.workdir / "nats-server-in-cgroup"
        # NatsCluster runs `<binary> -c <dir>/<node>/nats.conf`: the node is the config's dir.
        wrapper.write_text(
            "#!/bin/sh\n"
            "# Join this node's cgroup before nats-server opens a socket, then become it.\n"
            'node=$(basename "$(dirname "$2")")\n'
            f'mkdir -p "{self.group_root}/$node"\n'
            f'echo $$ > "{self.group_root}/$node/cgroup.procs"\n'
            f'exec "{cluster.binary}" "$@"\n'
        )
        wrapper.chmod(0o755)
        cluster.binary = str(wrapper)
        self.cluster = cluster

    def _nft(self, *commands: str) -> None:
        script = "\n".join(commands) + "\n"
        done = subprocess.run(
            ["nft", "-f", "-"], input=script, text=True, capture_output=True, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"nft failed ({done.returncode}): {done.stderr.strip()}\n{script}")

    def isolate(self, index: int) -> None:
        """Drop all route traffic between node ``index`` and the other nodes."""
        assert self.cluster is not None, "install() first"
        node = self.cluster.nodes[index]
        others = ", ".join(str(n.cluster_port) for n in self.cluster.nodes if n is not node)
        group = (self.group_root / node.name).relative_to(NFT_CGROUP_ROOT)
        level = len((self.group_root / node.name).relative_to(self.mount).parts)
        mine = f'socket cgroupv2 level {level} "{group}"'
        port = node.cluster_port
        self._nft(
            f"add table inet {self.table}",
            f"add chain inet {self.table} out {{ type filter hook output priority 0; }}",
            f"add chain inet {self.table} in {{ type filter hook input priority 0; }}",
            f"add rule inet {self.table} out {mine} tcp dport {{ {others} }} drop",
            f"add rule inet {self.table} out {mine} tcp sport {port} drop",
            f"add rule inet {self.table} in {mine} tcp sport {{ {others} }} drop",
            f"add rule inet {self.table} in tcp dport {port} drop",
        )
        self._table_added = True

    def heal(self) -> None:
        if self._table_added:
            self._nft(f"delete table inet {self.table}")
            self._table_added = False

    def close(self) -> None:
        """Remove the rules and the cgroups (call after the cluster's processes are gone)."""
        with contextlib.suppress(RuntimeError):
            self.heal()
        if self.group_root.exists():
            for child in self.group_root.iterdir():
                if child.is_dir():
                    with contextlib.suppress(OSError):
                        child.rmdir()
            with contextlib.suppress(OSError):
                self.group_root.rmdir()
