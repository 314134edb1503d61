"""The results: run folders written whole and read back (:mod:`.store`), statistics with
intervals (:mod:`.stats`), saved agents loaded safely (:mod:`.saved`) and the episodes they
play as data (:mod:`.episodes`). Below the runner, which writes into it, and the pages, which
read it; it imports only the spec."""
