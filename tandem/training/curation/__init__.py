"""Data curation: read instruction data in its native formats, normalize it to one chat schema,
identify its language, drop duplicates and low-quality records, tag domains, and report what
happened (`tandem data curate`)."""
