; Parity case "absent-pets", after OpenCog atomspace tests/query/absent-pets.scm: AbsentLink with a constant beside the variable.
;; @data
(Inheritance (Concept "fido") (Concept "dog"))
(Inheritance (Concept "rex") (Concept "dog"))
(Evaluation (Predicate "owns") (List (Concept "ann") (Concept "fido")))
;; @query
(Get (Variable "$p")
  (And (Inheritance (Variable "$p") (Concept "dog"))
       (Absent (Evaluation (Predicate "owns") (List (Concept "ann") (Variable "$p"))))))
;; @expect
(Set (Concept "rex"))
