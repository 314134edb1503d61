"""Running a spec: one run or a seed group top to bottom (:mod:`.runs`), the backends that
execute jobs (:mod:`.backends`, :mod:`.ray_backend`), workers that die with their command
(:mod:`.processes`) and the runner on top (:mod:`.runner`). Imports the spec and the
results, never the pages."""
