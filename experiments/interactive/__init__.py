"""The commands people type: ``offswitch`` itself (:mod:`.cli`), ``offswitch play``
(:mod:`.play`) and ``offswitch replay`` (:mod:`.replay`). On top of everything else."""
