"""Files on disk: validated names, atomic streamed writes, archive extraction and download bundles.

Only the standard library, ``xnatd.errors`` and zipstream-ng are used here, so the services can
rely on these rules without any database or HTTP concern leaking in. The package itself imports
nothing: the zip-import helper processes load only the modules they use.
"""
