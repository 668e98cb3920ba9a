"""Records: the typed schema, the store (paths, atomic writes, the index), queries, the pandas frame, the environment."""

from peftbench.records import studies as studies
