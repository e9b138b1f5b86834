"""Air-gapped operation (upstream image-factory issue #310): a bundle written on one side of
the gap (`export.write_bundle`) and loaded into another factory's store on the other
(`importer.load_bundle`), which then serves the same IDs with the same bytes."""
