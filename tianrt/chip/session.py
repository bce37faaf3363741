"""One chip, one link, several networks: a session on a board split into the regions of a
``tr.chip.compile_many`` partition, and one link per region over the session's one port.

    part = tr.chip.compile_many({"nsm": q_nsm, "cann": q_cann}, spec)
    with tr.chip.open_many(part, port="auto") as chip:        # LOAD_REGIONS: the layout
        rts = {k: tr.Runtime(g, backend="chip", session=chip, region=k) for k, g in graphs.items()}
        rts["nsm"].step(...)                                   # REGION frames addressed to "nsm"

The session opens the port and says HELLO once, then LOAD_REGIONS with the layout (each
region's name and rectangle). Each region's link (``attach``) is a ChipLink that has no port
of its own: every command it sends goes out on the session's port wrapped in a REGION frame
(u8 region, u8 command, the command's payload), so its image upload (a REGION-addressed
LOAD_IMAGE, checked by the board against the region's rectangle), its tick, its journal, its
resynchronisation after an unanswered step and its outputs are the region's own, exactly as a
ChipLink's are for a whole chip. When the board resets, the session reconnects, loads the
layout again and restores every region (its image, then its journal replayed). docs/protocol.md
(3d) and docs/chip.md (One chip, several networks).
"""
from __future__ import annotations

import json

from . import protocol as P
from . import regionwire
from .errors import LinkError
from .journal import Delivery, Journal
from .link import ChipLink
from .spec import ChipSpec


class SessionLink(ChipLink):
    """The session's own link: the port, HELLO, LOAD_REGIONS and the recovery of all regions."""

    layout: bytes | None = None

    def __init__(self, port, *, layout: bytes, **options):
        self.views: dict[str, RegionLink] = {}
        self.layout = None            # not yet: a recovery during HELLO has no layout to restore
        super().__init__(port, **options)
        try:
            self.regions = P.read_json(self._call(P.LOAD_REGIONS, layout), "LOAD_REGIONS reply")["regions"]
        except BaseException:
            self.close()
            raise
        self.layout = layout

    def _restore(self) -> dict:
        """After a board reset: the layout again, then each region's image and journal."""
        if self.layout is None:
            return {}
        self._transaction(P.LOAD_REGIONS, self.layout)
        for v in self.views.values():
            if v._image is None:
                continue
            outputs = v._restore()
            if not (v.replay and v._journal.complete):
                v._journal_clear()    # the region starts again from tick 0 (the warning says so)
            for name, item in outputs.items():
                v._outputs.hold(name, item)
        return {}


class RegionLink(ChipLink):
    """A ChipLink to one region of a session's chip: its commands travel as REGION frames on
    the session's port; everything else (journal, tick, resync, outputs) is its own."""

    def __init__(self, session: SessionLink, index: int, name: str):
        self.session, self.index, self.region = session, int(index), name
        self.port = session.port
        self.timeout, self.retries, self.replay = session.timeout, session.retries, session.replay
        self.sparse = session.sparse
        self.stats = session.stats          # one port, one set of link counters
        self._where = f"{session.where} region {name!r}"
        self._image = None
        self._journal = Journal()
        self._outputs = Delivery()
        self._image_info: dict = {}
        self._batch = 1
        self._uncertain = None
        self._desync = None
        self._interrupted = False
        self._closed = False

    @property
    def board(self) -> dict:
        return self.session.board

    @board.setter
    def board(self, value) -> None:      # (ChipLink's HELLO sets it; a region never says HELLO)
        pass

    @property
    def max_payload(self) -> int:
        return self.session.max_payload

    def _transaction(self, cmd: int, payload: bytes = b"") -> bytes:
        if self._closed:
            raise LinkError(f"{self._where}: this region's link is closed", command=cmd)
        return self.session._transaction(P.REGION, self._pack(regionwire.pack_call, self.index, cmd, payload))

    def _recover(self, reason: str) -> None:
        self.session._recover(reason)      # restores every region, this one included

    def _send_abort(self) -> None:
        self.session._send_abort()

    def hello(self) -> dict:
        return self.session.hello()

    def reboot(self) -> None:
        self.session.reboot()

    def close(self) -> None:
        """Detach from the session (the chip and the other regions keep running)."""
        self._closed = True
        if self.session.views.get(self.region) is self:
            del self.session.views[self.region]


class ChipSession:
    """One board split into the regions of ``partition``, over one port (as ChipLink: a
    device or pty path, a pyserial URL, "auto", or a port object)."""

    def __init__(self, partition, port="auto", **link_options):
        self.partition = partition
        if port == "inproc":
            raise LinkError("a chip session needs a board behind a link: port='auto' (firmware_sim on a "
                            "pty), a device or pty path, a pyserial URL, or an in-process board "
                            "(tianrt.firmware_sim.loopback.BoardPort(spec))")
        if port == "auto" and "spawn_args" not in link_options:   # a local board built to the spec
            link_options["spawn_args"] = ("--spec", json.dumps(partition.spec.to_dict()))
        layout = regionwire.pack_layout((r.name, r.row, r.col, r.rows, r.cols) for r in partition.regions)
        self.link = SessionLink(port, layout=layout, **link_options)

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.partition.regions]

    @property
    def where(self) -> str:
        return self.link.where

    def region_spec(self, name: str) -> ChipSpec:
        """The ChipSpec of a region's rectangle (what its image was compiled for)."""
        r = self.partition.region(name)
        return ChipSpec.from_dict({**self.partition.spec.to_dict(), "mesh_rows": r.rows, "mesh_cols": r.cols})

    def attach(self, name: str) -> RegionLink:
        """The link to region ``name`` (one at a time: a second attach while the first is
        open is refused, as two users of one region would disturb each other's state)."""
        if self.link._closed:
            raise LinkError(f"{self.link.where}: the chip session is closed")
        if name not in self.names:
            raise LinkError(f"the chip session has no region {name!r}; its regions: {', '.join(self.names)}")
        if name in self.link.views:
            raise LinkError(f"region {name!r} of {self.link.where} is already attached to a runtime; "
                            f"close that one first")
        v = RegionLink(self.link, self.names.index(name), name)
        self.link.views[name] = v
        return v

    def counters(self) -> dict:
        """The whole chip's counters: every region's summed (maxima and time: the largest)."""
        return self.link.counters()

    def info(self) -> dict:
        return self.link.info()

    def close(self) -> None:
        for v in list(self.link.views.values()):
            v.close()
        self.link.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open_many(partition, port="auto", **link_options) -> ChipSession:
    """A session on one chip split into ``partition``'s regions (``tr.chip.compile_many``);
    each network then runs as ``tr.Runtime(graph, backend="chip", session=s, region=name)``."""
    return ChipSession(partition, port, **link_options)
