"""Writes a posterior's groups into one netCDF4 file with h5netcdf, as xarray's writer would.

xarray's `Dataset.to_netcdf` costs a run ~0.75 s for a few MB: it imports
dask and distributed to pick a scheduler, and reopens the file once per
group. This writer opens the file once and makes the same h5netcdf calls
xarray's h5netcdf backend makes, after the same CF encoding for the plain
variables a posterior holds: floats get a NaN `_FillValue`, booleans are
stored as int8 with `dtype: bool`, strings as variable-length strings. So
`xr.open_dataset`, `Posterior.from_netcdf` and `arviz.from_netcdf` read back
what xarray's writer would have written. A Dataset holding anything else
(dask arrays, datetimes, non-string objects, CF encodings) is written by
xarray's writer instead, whole file, so its encoding rules stay xarray's.
"""

from __future__ import annotations

from numbers import Number
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Mapping

    import xarray as xr

# Variable attributes xarray's CF coders act on (for numbers and strings; `units` and
# `calendar` only matter for datetimes, which go to xarray anyway): with any of them
# the encoding is xarray's business.
CODER_ATTRS = frozenset(
    {"_FillValue", "missing_value", "scale_factor", "add_offset", "dtype", "_Unsigned"}
    | {"_Encoding", "coordinates", "bounds"}
)
# Encoding entries h5netcdf ignores when xarray writes (bookkeeping from a previous read).
IGNORED_ENCODING = frozenset({"source", "original_shape", "preferred_chunks", "contiguous"})
# Encoding entries that change nothing while false or None (a string read back says it is off).
OFF_ENCODING = frozenset(
    {"chunksizes", "zlib", "szip", "zstd", "bzip2", "blosc", "shuffle", "fletcher32"}
)
ATTR_TYPES = (str, Number, np.ndarray, np.number, list, tuple)  # xarray's, less bytes


class PlannedVariable(NamedTuple):
    """One variable as h5netcdf receives it: what xarray's encoders would hand over."""

    name: str
    dims: tuple[str, ...]
    data: np.ndarray
    dtype: object
    fillvalue: object
    attrs: dict
    compress: bool


def compressible(values) -> bool:
    """arviz's rule (numbers, booleans, bytes): h5netcdf refuses zlib on variable-length strings."""
    return values.dtype.kind in "biufcS"


def write_netcdf(groups: Mapping[str, xr.Dataset], path: str | Path, compress: bool) -> None:
    """One HDF5 group per Dataset, in order, as `Dataset.to_netcdf(group=...)` per group writes."""
    plans = {}
    for name, ds in groups.items():
        plan = _plan_group(name, ds, compress)
        if plan is None:  # something only xarray's encoders know how to store
            write_with_xarray(groups, path, compress)
            return
        plans[name] = plan
    import h5netcdf

    with h5netcdf.File(str(path), "w") as f:
        for name, (attrs, sizes, variables) in plans.items():
            _write_group(f.create_group(name), attrs, sizes, variables)


def write_with_xarray(groups: Mapping[str, xr.Dataset], path: str | Path, compress: bool) -> None:
    """xarray's own writer, one `to_netcdf` per group (imports dask and distributed: ~0.35 s)."""
    mode = "w"
    for name, ds in groups.items():
        encoding = (
            {v: {"zlib": True} for v, vals in ds.variables.items() if compressible(vals)}
            if compress
            else None
        )
        ds.to_netcdf(str(path), mode=mode, group=name, engine="h5netcdf", encoding=encoding)
        mode = "a"


def _write_group(group, attrs: dict, sizes: dict, variables: list[PlannedVariable]) -> None:
    # xarray's order: dataset attributes, dimensions, then each variable and its data
    for key, value in attrs.items():
        group.attrs[key] = value
    for dim, size in sizes.items():
        group.dimensions[dim] = size
    for v in variables:
        kwargs = {}
        if v.dims:  # xarray passes no chunking or filters for scalars
            kwargs["chunks"] = None
            if v.compress:
                kwargs["compression"] = "zlib"
        var = group.create_variable(
            v.name, dimensions=v.dims, dtype=v.dtype, fillvalue=v.fillvalue, **kwargs
        )
        for key, value in v.attrs.items():
            var.attrs[key] = value
        var[...] = v.data


def _plan_group(name, ds: xr.Dataset, compress: bool):
    """(attrs, dimension sizes, variables) for one group, or None when xarray must write it."""
    if not _plain_name(name) or ds.encoding.get("unlimited_dims"):
        return None
    if "coordinates" in ds.attrs or not _plain_attrs(ds.attrs):
        return None
    # non-dimension coordinates become CF `coordinates` attributes in xarray's encoder
    if any(ds[c].dims != (c,) for c in ds.coords):
        return None
    variables = []
    sizes: dict[str, int] = {}
    for vname, var in ds.variables.items():
        planned = _plan_variable(vname, var, compress)
        if planned is None or not all(_plain_name(d) for d in var.dims):
            return None
        variables.append(planned)
        sizes |= var.sizes
    return dict(ds.attrs), sizes, variables


def _plan_variable(name, var, compress: bool) -> PlannedVariable | None:
    if not _plain_name(name) or not _plain_attrs(var.attrs) or CODER_ATTRS & set(var.attrs):
        return None
    # to_netcdf's `encoding` argument replaces a compressed variable's own encoding;
    # any other variable keeps its own, and then only an empty one is plain
    zlib = compress and compressible(var)
    if not zlib and not _plain_encoding(var):
        return None
    data = var.data  # numpy for loaded variables; a dask array (or any other) is xarray's
    if type(data) is not np.ndarray:
        return None
    attrs = dict(var.attrs)
    kind = data.dtype.kind
    fillvalue = None
    if kind == "f":
        dtype = data.dtype
        fillvalue = data.dtype.type(np.nan)  # xarray's default _FillValue for floats
    elif kind in "iu":
        dtype = data.dtype
    elif kind == "b":
        # xarray's BooleanCoder: int8 flagged `dtype: bool`, decoded back to bool on read
        dtype, data = np.dtype("i1"), data.view(np.int8)
        attrs["dtype"] = "bool"
    elif kind == "U" or (kind == "O" and data.size and _all_str(data)):
        import h5py

        dtype = h5py.string_dtype()  # variable-length UTF-8, as xarray writes `str`
    else:  # complex, bytes, datetimes, objects other than str: xarray's encoders decide
        return None
    return PlannedVariable(name, tuple(var.dims), data, dtype, fillvalue, attrs, zlib)


def _plain_encoding(var) -> bool:
    for key, value in var.encoding.items():
        if key in OFF_ENCODING and value:
            return False
        if key == "dtype" and not _same_dtype(value, var.dtype):
            return False
        if key not in IGNORED_ENCODING | OFF_ENCODING | {"dtype"}:
            return False
    return True


def _same_dtype(encoded, dtype: np.dtype) -> bool:
    # xarray's NonStringCoder drops an encoded dtype equal to the data's; `str` means vlen strings
    if encoded is str:
        return dtype.kind in "UO"
    try:
        return np.dtype(encoded) == dtype
    except TypeError:
        return False


def _plain_name(name) -> bool:
    return isinstance(name, str) and bool(name) and "/" not in name


def _plain_attrs(attrs) -> bool:
    return all(isinstance(k, str) and k and isinstance(v, ATTR_TYPES) for k, v in attrs.items())


def _all_str(data: np.ndarray) -> bool:
    return all(type(x) is str for x in data.flat)
