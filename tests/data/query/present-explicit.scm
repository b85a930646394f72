; Parity case "present-explicit", after OpenCog atomspace tests/query/present.scm: PresentLink: every clause present.
;; @data
(Inheritance (Concept "cat") (Concept "mammal"))
(Inheritance (Concept "dog") (Concept "mammal"))
(Inheritance (Concept "cow") (Concept "mammal"))
(Inheritance (Concept "cat") (Concept "pet"))
(Inheritance (Concept "dog") (Concept "wild"))
;; @query
(Get (Variable "$x")
  (Present (Inheritance (Variable "$x") (Concept "mammal"))
           (Inheritance (Variable "$x") (Concept "pet"))))
;; @expect
(Set (Concept "cat"))
