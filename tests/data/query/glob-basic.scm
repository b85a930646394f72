; Parity case "glob-basic", after OpenCog atomspace tests/query/glob-basic.scm: GlobNode: a variable for a run of atoms.
;; @data
(List (Concept "a") (Concept "b") (Concept "c"))
;; @query
(Get (Glob "$g") (List (Concept "a") (Glob "$g")))
;; @refused GlobNode
