; Parity case "absent-missing-constant", after OpenCog atomspace tests/query/absent-disconn1.scm: an AbsentLink naming an atom the data lacks always holds.
;; @data
(Inheritance (Concept "cat") (Concept "mammal"))
(Inheritance (Concept "dog") (Concept "mammal"))
(Inheritance (Concept "cow") (Concept "mammal"))
(Inheritance (Concept "cat") (Concept "pet"))
(Inheritance (Concept "dog") (Concept "wild"))
;; @query
(Get (Variable "$x")
  (And (Inheritance (Variable "$x") (Concept "mammal"))
       (Absent (Inheritance (Variable "$x") (Concept "robot")))))
;; @expect
(Set (Concept "cat") (Concept "cow") (Concept "dog"))
