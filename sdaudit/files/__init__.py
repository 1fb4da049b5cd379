"""Files that come from outside or go out: safe reads and writes, run folders, sheets, reference images, snapshots."""
