; Parity case "absent-basic", after OpenCog atomspace tests/query/absent.scm: AbsentLink: items with no visibility link.
;; @data
(Evaluation (Predicate "visible") (List (Concept "item 1")))
(Inheritance (Concept "item 1") (Concept "thing"))
(Inheritance (Concept "item 2") (Concept "thing"))
;; @query
(Get (Variable "$x")
  (And (Inheritance (Variable "$x") (Concept "thing"))
       (Absent (Evaluation (Predicate "visible") (List (Variable "$x"))))))
;; @expect
(Set (Concept "item 2"))
