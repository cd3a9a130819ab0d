"""pytest plugin entry point (``pytest11``), registered so ``pytest --tune`` can arrive without reinstalling.

Until the plugin's hooks land it defines none, so pytest behaves exactly as it would without it.
"""
