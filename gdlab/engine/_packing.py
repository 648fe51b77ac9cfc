"""A run's :class:`~gdlab.engine._tile.TileState` between tiles, packed into a few complex arrays:
XLA:CPU emits one loop kernel per carried array, so the CPU tiles (:mod:`gdlab.engine.tiled`) carry
as few as exactness allows."""

from __future__ import annotations

import contextlib

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from numpy.typing import DTypeLike

from gdlab.engine._tile import TileState

__all__ = ["Packing"]


class Packing:
    """Per-run state ↔ a few complex arrays: each carried array costs one kernel per tile.

    Float fields keep their values; the integer fields (values in [-1, T]) are the digits of one
    radix-(T + 2) number per unit, stored by its bits in a float of the same width (offset so the
    pattern is a normal number, never a subnormal, inf or NaN). Units pair up as complex numbers of
    the simulation dtype, except in float32 with more than two units: there two 32-bit units make
    one 64-bit word and two words one complex128, so the canonical sweep's state, (w, m, err_obs,
    counters), is a single array. That halves the kernels but makes the loop 64-bit (8 runs per
    vector instead of 16), which pays for three or four units, not for two (``gdlab bench``). Five
    units (the recurrence deviation ``d`` too) would spill one unit into a second complex128, whose
    kernel recomputes every statistic of the tile: there the iterate ``w`` goes *apart*, alone in a
    complex number of the dtype, whose kernel only repeats the steps (measured on the canonical
    sweep with the recurrence, 2 CPU devices: 0.58 s → 0.42 s a chunk of 10⁶ runs × 1000 steps;
    without it 0.30 s). The running max ``m`` sits in a low half, so it reads back exactly even
    when a speculative tile left NaN bits beside it. Wide packing needs 64-bit types: trace under
    :meth:`context`.
    """

    def __init__(self, dtype: DTypeLike, steps: int, floats: tuple[str, ...],
                 ints: tuple[str, ...]):
        self.dtype = np.dtype(dtype)
        finfo = np.finfo(self.dtype)
        self.unit = {32: jnp.uint32, 64: jnp.uint64}[finfo.bits]
        self.offset = 1 << finfo.nmant                        # exponent field 1: a normal number
        top = ((1 << finfo.nexp) - 1) << finfo.nmant          # inf/NaN patterns start here
        self.radix = steps + 2
        per = 1
        while self.offset + self.radix ** (per + 1) <= top:
            per += 1
        self.int_groups = [ints[i:i + per] for i in range(0, len(ints), per)]
        units = len(floats) + len(self.int_groups)
        self.wide = finfo.bits == 32 and units > 2
        self.apart = ("w",) if self.wide and units % 4 == 1 and "w" in floats else ()
        floats = tuple(k for k in floats if k not in self.apart)
        if self.apart and "m" in floats and floats.index("m") % 2 == 0:   # m into a low half
            i = floats.index("m")
            floats = floats[:i] + floats[i + 1:i + 2] + ("m",) + floats[i + 2:]
        self.floats = floats

    def context(self) -> contextlib.AbstractContextManager:
        """Where :meth:`pack` and :meth:`unpack` are traced: 64-bit types on for wide packing."""
        return jax.enable_x64(True) if self.wide else contextlib.nullcontext()

    def pack(self, state: TileState) -> tuple:
        units = [getattr(state, k).astype(self.dtype) for k in self.floats]
        for group in self.int_groups:   # lax, not jnp: this is traced in every tile variant
            u = None
            for k in group:
                digit = lax.convert_element_type(getattr(state, k), jnp.int32)
                digit = lax.convert_element_type(lax.add(digit, lax.full_like(digit, 1)), self.unit)
                u = digit if u is None else lax.add(lax.mul(u, lax.full_like(u, self.radix)), digit)
            u = lax.add(u, lax.full_like(u, self.offset))
            units.append(lax.bitcast_convert_type(u, self.dtype))
        if self.wide:                                       # (hi, lo) float32 bits -> one float64
            units += [jnp.zeros_like(units[0])] * (-len(units) % 4)
            bits = [lax.convert_element_type(lax.bitcast_convert_type(u, jnp.uint32), jnp.uint64)
                    for u in units]
            units = [lax.bitcast_convert_type(
                lax.bitwise_or(lax.shift_left(hi, lax.full_like(hi, 32)), lo), jnp.float64)
                for hi, lo in zip(bits[::2], bits[1::2])]
        units += [jnp.zeros_like(units[0])] * (len(units) % 2)
        apart = [getattr(state, k).astype(self.dtype) for k in self.apart]
        return (tuple(lax.complex(re, im) for re, im in zip(units[::2], units[1::2]))
                + tuple(lax.complex(x, jnp.zeros_like(x)) for x in apart))

    def unpack(self, arrays: tuple) -> TileState:
        cut = len(arrays) - len(self.apart)
        arrays, apart = arrays[:cut], dict(zip(self.apart, map(jnp.real, arrays[cut:])))
        units = [part(c) for c in arrays for part in (jnp.real, jnp.imag)]
        if self.wide:
            bits = [lax.bitcast_convert_type(u, jnp.uint64) for u in units]
            halves = lambda b: (lax.shift_right_logical(b, lax.full_like(b, 32)),
                                lax.bitwise_and(b, lax.full_like(b, 0xFFFFFFFF)))
            units = [lax.bitcast_convert_type(lax.convert_element_type(h, jnp.uint32), self.dtype)
                     for b in bits for h in halves(b)]
        state = dict(zip(self.floats, units), **apart)
        for group, x in zip(self.int_groups, units[len(self.floats):]):
            u = lax.bitcast_convert_type(x, self.unit)
            const = lambda c, u=u: lax.full_like(u, c)   # u's shape and dtype: fixed per group
            u = lax.sub(u, const(self.offset))
            for k in reversed(group):   # unsigned: lax.rem / lax.div are floor mod / floor div
                digit = lax.convert_element_type(lax.rem(u, const(self.radix)), jnp.int32)
                state[k] = lax.convert_element_type(lax.sub(digit, lax.full_like(digit, 1)),
                                                    self.dtype)
                u = lax.div(u, const(self.radix))
        return TileState(**state)
