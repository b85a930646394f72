; Parity case "present-absent", after OpenCog atomspace tests/query/seq-absence.scm: PresentLink and AbsentLink under one AndLink.
;; @data
(Inheritance (Concept "cat") (Concept "mammal"))
(Inheritance (Concept "dog") (Concept "mammal"))
(Inheritance (Concept "cow") (Concept "mammal"))
(Inheritance (Concept "cat") (Concept "pet"))
(Inheritance (Concept "dog") (Concept "wild"))
;; @query
(Get (Variable "$x")
  (And (Present (Inheritance (Variable "$x") (Concept "mammal")))
       (Absent (Inheritance (Variable "$x") (Concept "pet")))))
;; @expect
(Set (Concept "cow") (Concept "dog"))
