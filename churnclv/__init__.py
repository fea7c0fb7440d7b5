"""churnclv: churn and customer-lifetime-value scores from a transaction log.

The layers are the repository's top-level folders, imported as ``churnclv.contract``, ``churnclv.features``,
``churnclv.scoring``, ``churnclv.campaigns``, ``churnclv.training``, ``churnclv.serving`` and
``churnclv.seeds``; this folder holds the command line. The installed distribution puts the layers inside
this package (pyproject's ``package-dir``), so ``churnclv`` is the only name it adds to site-packages.
Run from a source tree (the repository, a Bento's ``src/``) the layers are this folder's siblings, and
the package's path reaches them there.
"""

import os as _os

_HERE = _os.path.dirname(_os.path.abspath(__file__))
_SOURCE_TREE = _os.path.dirname(_HERE)
if not _os.path.isdir(_os.path.join(_HERE, "contract")) and _os.path.isfile(
        _os.path.join(_SOURCE_TREE, "contract", "__init__.py")):
    __path__.append(_SOURCE_TREE)
