"""beam_memo: Beam's per-transform introspection remembered, with the answers Beam gives itself."""

from __future__ import annotations

import json
import subprocess
import sys

import apache_beam as beam
import pytest
from apache_beam.coders import VarIntCoder
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions, TypeOptions
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import BagStateSpec, TimerSpec, on_timer

from corpusforge.pipelines import beam_memo
from tests.helpers import REPO, SAMPLE_CONFIG, SAMPLE_DIR

BAG = BagStateSpec("seen", VarIntCoder())
TIMER = TimerSpec("flush", TimeDomain.WATERMARK)
SEEN, FLUSH = beam.DoFn.StateParam(BAG), beam.DoFn.TimerParam(TIMER)


class _Stateful(beam.DoFn):
    def process(self, element, seen=SEEN, flush=FLUSH):
        yield element

    @on_timer(TIMER)
    def _flush(self, seen=SEEN):
        yield 0


class _Plain(beam.DoFn):
    def process(self, element):
        yield element


class _Borrows(beam.DoFn):
    """Holds another object's bound method: dir() sees its defaults, so it must not be cached."""

    def __init__(self, other):
        self.borrowed = other.process

    def process(self, element):
        yield element


def test_specs_are_beams_and_computed_once_per_class(monkeypatch):
    calls = []
    original = beam_memo._ORIGINAL_SPECS
    monkeypatch.setattr(beam_memo, "_ORIGINAL_SPECS", lambda d: calls.append(type(d)) or original(d))
    monkeypatch.setattr(beam_memo, "_SPECS", {})
    for _ in range(3):
        assert beam_memo.get_dofn_specs(_Stateful()) == ({BAG}, {TIMER}) == original(_Stateful())
        assert beam_memo.get_dofn_specs(_Plain()) == (set(), set())
    assert calls == [_Stateful, _Plain]
    states, _ = beam_memo.get_dofn_specs(_Stateful())
    states.clear()  # a caller's set is its own
    assert beam_memo.get_dofn_specs(_Stateful())[0] == {BAG}
    # an instance holding a stateful DoFn's method has that DoFn's specs, never a cached empty answer
    assert beam_memo.get_dofn_specs(_Borrows(_Plain())) == (set(), set())
    assert beam_memo.get_dofn_specs(_Borrows(_Stateful())) == ({BAG}, {TIMER})


def test_views_share_the_options_and_follow_a_replaced_dict():
    options = PipelineOptions(["--runner", "SomeRunner"])
    first = beam_memo.view_as(options, StandardOptions)
    assert beam_memo.view_as(options, StandardOptions) is first and first.runner == "SomeRunner"
    first.runner = "Other"  # a write through one view is seen by the options and its other views
    assert options.get_all_options()["runner"] == "Other"
    assert beam_memo.view_as(options, TypeOptions).pipeline_type_check is True
    options._all_options = dict(options._all_options, runner="Third")
    assert beam_memo.view_as(options, StandardOptions).runner == "Third"
    assert beam_memo.view_as(PipelineOptions([]), StandardOptions).runner is None  # per options object


# The sample's graph translated with and without the memo: same transforms, payload kinds, coders,
# state and timer specs (the whole proto holds pickled DoFns, whose bytes are not comparable).
SUMMARY = f"""
import json, sys
import apache_beam as beam
from corpusforge.pipelines import beam_memo, build
from corpusforge.schemas.config import load_config
from corpusforge.transforms.io.read import discover_inputs
if sys.argv[1] == "off":
    build.beam_memo.install = lambda: None
cfg = load_config({str(SAMPLE_CONFIG)!r}, [])
files, _ = discover_inputs([{str(SAMPLE_DIR)!r}], cfg.input.format)
p = beam.Pipeline()
build.build_pipeline(p, cfg, files, "/nonexistent/out", local_runner=True)
proto = p.to_runner_api()
c = proto.components
coder = lambda cid: [c.coders[cid].spec.urn, [coder(x) for x in c.coders[cid].component_coder_ids]]
out = []
for t in sorted(c.transforms.values(), key=lambda t: t.unique_name):
    row = [t.unique_name, t.spec.urn, sorted(coder(c.pcollections[p].coder_id) for p in t.outputs.values())]
    if t.spec.urn == "beam:transform:pardo:v1":
        from apache_beam.portability.api import beam_runner_api_pb2
        pardo = beam_runner_api_pb2.ParDoPayload.FromString(t.spec.payload)
        row += [sorted(pardo.state_specs), sorted(pardo.timer_family_specs), pardo.requires_stable_input]
    out.append(row)
print(json.dumps([beam_memo.PipelineOptions.view_as is beam_memo.view_as, out]))
"""


def _summary(mode: str) -> list:
    proc = subprocess.run(
        [sys.executable, "-c", SUMMARY, mode], capture_output=True, text=True, cwd=REPO, check=True
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow  # a fresh interpreter in a subprocess
def test_the_sample_graph_translates_the_same_with_and_without_the_memo():
    (memo_off, without), (memo_on, with_memo) = _summary("off"), _summary("on")
    assert (memo_off, memo_on) == (False, True)
    # the whole sample graph (296 transforms since the outputs share one finalize), not a few of them
    assert len(with_memo) > 250 and with_memo == without


class _YieldsAndReturns(beam.DoFn):
    def process(self, element):
        if element:
            return [element]
        yield element


def test_yield_and_return_check_is_beams_and_read_once_per_function(monkeypatch):
    from apache_beam.transforms import core

    calls = []
    original = beam_memo._ORIGINAL_YIELD_AND_RETURN

    def counting(fn):
        calls.append(fn)
        return original(fn)

    monkeypatch.setattr(beam_memo, "_ORIGINAL_YIELD_AND_RETURN", counting)
    monkeypatch.setattr(beam_memo, "_YIELD_AND_RETURN", {})
    for dofn in (_YieldsAndReturns(), _YieldsAndReturns(), _Plain(), _Plain()):
        assert beam_memo.check_fn_use_yield_and_return(dofn.process) is original(dofn.process)
    assert beam_memo.check_fn_use_yield_and_return(_YieldsAndReturns().process) is True
    assert len(calls) == 2  # once per function, not per instance
    beam_memo.install()
    assert core._check_fn_use_yield_and_return is beam_memo.check_fn_use_yield_and_return
    assert beam_memo.check_fn_use_yield_and_return(len) is False  # no code object: Beam's answer
