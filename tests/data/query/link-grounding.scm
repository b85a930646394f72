; Parity case "link-grounding", after OpenCog atomspace tests/query/BuggyLinkUTest: an untyped variable grounds to a whole link.
;; @data
(Evaluation (Predicate "said") (List (Concept "ann") (Inheritance (Concept "cat") (Concept "mammal"))))
;; @query
(Get (Variable "$s") (Evaluation (Predicate "said") (List (Concept "ann") (Variable "$s"))))
;; @expect
(Set (Inheritance (Concept "cat") (Concept "mammal")))
