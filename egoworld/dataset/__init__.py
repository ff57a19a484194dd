"""The aligned episode store (LeRobot-v3 layout), its DuckDB catalog and the clip loader.

``build.build_store`` packs synced sessions into the store; ``store.open_store`` reads its
metadata without decoding video; ``catalog`` answers SQL over it; ``loader.ClipDataset`` serves
training clips. See docs/dataset.md.
"""
