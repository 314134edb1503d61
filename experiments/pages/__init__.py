"""Pages and figures: the report's tables (:mod:`.report`), its figures (:mod:`.figures`),
pictures and GIFs (:mod:`.animation`, :mod:`.frames`) and the published page
(:mod:`.publish`). They read what the runner wrote and draw it."""
