# Kiln's stand-in for the parts of Azure ML an entry script imports (see shim/README.md)
