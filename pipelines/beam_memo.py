"""Introspections Beam repeats for every transform while building and translating the graph,
remembered instead. The first two were about half of the driver's graph construction and
translation on the sample (~2.1 CPU s for ~350 transforms and 180 ParDos).

1. ``userstate.get_dofn_specs`` finds a DoFn's state and timer specs by wrapping every bound method
   of the instance and reading its signature's defaults (``inspect.signature`` on ~30 methods).
   Beam calls it ~6 times per ParDo: when the ParDo is built (``is_stateful_dofn``), checked
   (``validate_stateful_dofn``) and translated: 1,068 calls and 35,000 signatures on the sample.
   The specs are method defaults declared on the class (``state=DoFn.StateParam(SPEC)``), so every
   instance of a class has the same ones, unless an instance holds a bound method of its own as an
   attribute (``dir()`` sees it too): such instances are never cached.
2. ``PipelineOptions.view_as(cls)`` builds a new argparse parser for ``cls`` and parses the flags
   again on every call (each ``add_argument`` looks up gettext catalogues on disk and the terminal
   size); ``Pipeline.apply`` and type inference call it ~3 times per transform. A view holds no
   state of its own: it reads and writes the options' shared ``_all_options`` dict. The view is
   remembered per options object and class, and made afresh if the options' flags or dict were
   replaced.
3. ``core._check_fn_use_yield_and_return`` reads the source of every ParDo's ``process`` from disk
   and tokenises it (``inspect.getsourcelines``) to warn about a ``process`` that both yields and
   returns a value: ~10 % of the sample's graph construction, mostly for the same few functions
   (Beam's own sinks are built 11 times, once per stage's rejected records). The answer depends on
   the source alone, which is that of the function's code object: it is remembered per code object
   (callables without one are checked every time).

The answers are the ones Beam computes; nothing about the graph or its translation changes.
"""

from __future__ import annotations

import types
import weakref
from typing import Any

from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.transforms import core, userstate

_ORIGINAL_SPECS = userstate.get_dofn_specs
_ORIGINAL_VIEW_AS = PipelineOptions.view_as
_ORIGINAL_YIELD_AND_RETURN = core._check_fn_use_yield_and_return
_YIELD_AND_RETURN: dict[types.CodeType, bool] = {}
_SPECS: dict[type, tuple[frozenset[Any], frozenset[Any]]] = {}
_VIEWS: weakref.WeakKeyDictionary[PipelineOptions, dict[type, PipelineOptions]] = weakref.WeakKeyDictionary()


def _has_own_methods(dofn: Any) -> bool:
    """Whether the instance itself holds a bound method (which ``dir(dofn)`` would also inspect)."""
    try:
        own = vars(dofn)
    except TypeError:  # no __dict__ (slots): nothing but the class's methods
        return False
    return any(isinstance(v, types.MethodType) for v in own.values())


def get_dofn_specs(dofn: Any) -> tuple[set[Any], set[Any]]:
    """``userstate.get_dofn_specs``, remembered per DoFn class; each caller gets its own sets."""
    if _has_own_methods(dofn):
        return _ORIGINAL_SPECS(dofn)
    cached = _SPECS.get(type(dofn))
    if cached is None:
        states, timers = _ORIGINAL_SPECS(dofn)  # raises for an invalid DoFn, which is then not cached
        cached = _SPECS.setdefault(type(dofn), (frozenset(states), frozenset(timers)))
    return set(cached[0]), set(cached[1])


def view_as(self: PipelineOptions, cls: type[Any]) -> Any:
    """``PipelineOptions.view_as``, one view per options object and view class."""
    views = _VIEWS.get(self)
    if views is None:
        views = _VIEWS.setdefault(self, {})
    view = views.get(cls)
    if view is None or view._all_options is not self._all_options or view._flags is not self._flags:
        view = views[cls] = _ORIGINAL_VIEW_AS(self, cls)
    return view


def check_fn_use_yield_and_return(fn: Any) -> bool:
    """``core._check_fn_use_yield_and_return``, remembered per code object of ``fn``."""
    code = getattr(getattr(fn, "__func__", fn), "__code__", None)
    if not isinstance(code, types.CodeType):
        return _ORIGINAL_YIELD_AND_RETURN(fn)
    answer = _YIELD_AND_RETURN.get(code)
    if answer is None:
        answer = _YIELD_AND_RETURN.setdefault(code, bool(_ORIGINAL_YIELD_AND_RETURN(fn)))
    return answer


def install() -> None:
    """Route Beam's calls to the remembered answers (idempotent).

    Beam looks them up at call time (``userstate.get_dofn_specs`` from core, common and operations;
    ``options.view_as`` as a method; ``_check_fn_use_yield_and_return`` from ``ParDo.__init__``), so
    the process's later pipelines use them too."""
    userstate.get_dofn_specs = get_dofn_specs
    core._check_fn_use_yield_and_return = check_fn_use_yield_and_return
    PipelineOptions.view_as = view_as  # type: ignore[method-assign]
