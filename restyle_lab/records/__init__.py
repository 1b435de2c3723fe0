"""Layer 1, what is on disk and how it is read and written: the one atomic writer, the run store and its parts,
images, image folders and manifests, packed mini files, NVlabs snapshots read without running them, the results
index and table views."""
