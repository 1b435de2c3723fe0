"""Layer 0, the facts the rest reads: names, records and checks (errors, formats, metric names, geometry, the
projector's schedule, architecture configs and encoder families, domains, method kinds, named methods, the shipped
mini files, devices). Nothing here loads a network or touches a store."""
