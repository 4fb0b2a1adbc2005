"""`Posterior`: the common posterior's container, laid out as arviz's InferenceData, without arviz.

arviz takes ~3.5 s to import, more than a whole rainfall fit samples for, and a
run needs none of it: the core computes its own diagnostics and draws its own
plots. A `Posterior` holds the same named groups of xarray Datasets
(`posterior`, `sample_stats`, `observed_data`, `constant_data`), answers the
same questions (`idata.posterior`, `idata["sample_stats"]`, `idata.groups()`)
and writes the same NetCDF file, one HDF5 group per InferenceData group, so
`arviz.from_netcdf` reads a run's posterior.nc as before. `to_arviz()` converts
for arviz's functions; an arviz InferenceData (arviz 0.x) or an xarray DataTree
(arviz 1.x) returned by a third-party backend is taken as is (`as_posterior`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import xarray as xr

# arviz's order, so files and reprs read the same as an InferenceData's
GROUP_ORDER = ("posterior", "sample_stats", "observed_data", "constant_data")


class Posterior:
    """Named groups of xarray Datasets: `posterior`, `sample_stats` and the data groups."""

    def __init__(self, **groups: xr.Dataset):
        order = [g for g in GROUP_ORDER if g in groups] + sorted(set(groups) - set(GROUP_ORDER))
        self._groups: dict[str, xr.Dataset] = {name: groups[name] for name in order}

    def groups(self) -> list[str]:
        return list(self._groups)

    def __getitem__(self, group: str) -> xr.Dataset:
        return self._groups[group]

    def __contains__(self, group: object) -> bool:
        return group in self._groups

    def __getattr__(self, group: str) -> xr.Dataset:
        groups = self.__dict__.get("_groups", {})
        if group in groups:
            return groups[group]
        raise AttributeError(f"the posterior has no group {group!r} (it has {', '.join(groups)})")

    def __setattr__(self, group: str, dataset: xr.Dataset) -> None:  # `idata.posterior = ...`
        if group.startswith("_"):
            object.__setattr__(self, group, dataset)
        else:
            self._groups[group] = dataset

    def __delattr__(self, group: str) -> None:  # `del idata.sample_stats`, as InferenceData allows
        if group not in self._groups:
            raise AttributeError(f"the posterior has no group {group!r}")
        del self._groups[group]

    def __repr__(self) -> str:
        return f"Posterior({', '.join(self._groups)})"

    def copy(self) -> Posterior:
        """A deep copy: changing it leaves this one as it was."""
        return Posterior(**{name: ds.copy(deep=True) for name, ds in self._groups.items()})

    @property
    def nbytes(self) -> int:
        return sum(v.nbytes for ds in self._groups.values() for v in ds.data_vars.values())

    def to_netcdf(self, path: str | Path, compress: bool = True) -> None:
        """One HDF5 group per posterior group, as `InferenceData.to_netcdf` writes them."""
        from .netcdf_writer import write_netcdf

        write_netcdf(self._groups, path, compress)

    @classmethod
    def from_netcdf(cls, path: str | Path) -> Posterior:
        """Every group of a posterior.nc, read into memory (a damaged block fails here, not later)."""
        import h5netcdf
        import xarray as xr

        with h5netcdf.File(str(path), "r") as f:
            names = list(f.groups)
        groups = {}
        for name in names:
            with xr.open_dataset(str(path), group=name, engine="h5netcdf") as ds:
                groups[name] = ds.load()
        return cls(**groups)

    def to_arviz(self):
        """An arviz.InferenceData holding the same groups (imports arviz: seconds)."""
        from arviz import InferenceData

        return InferenceData(**self._groups)


def as_posterior(fitted) -> Posterior | object:
    """`fitted` as a Posterior when it is one, an arviz InferenceData or an xarray DataTree.

    Anything else is returned unchanged for `check_posterior` to refuse by name.
    """
    if isinstance(fitted, Posterior):
        return fitted
    groups = getattr(fitted, "groups", None)
    if callable(groups):  # arviz.InferenceData (0.x)
        try:
            return Posterior(**{g: fitted[g] for g in groups()})
        except (TypeError, KeyError):
            return fitted
    children = getattr(fitted, "children", None)
    if children is not None and hasattr(fitted, "to_dataset"):  # xarray.DataTree (arviz 1.x)
        return Posterior(**{name: node.to_dataset() for name, node in children.items()})
    return fitted
