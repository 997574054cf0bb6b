"""The app's data files (icons, stylesheet, .desktop file), packaged as ``storegui.resources``.

A regular package (not a namespace one) so that ``importlib.resources.files``
gives a plain filesystem path in an installed wheel; see
:func:`storegui.resources_path`.
"""
