; Parity case "absent-multi", after OpenCog atomspace tests/query/absent-multi.scm: two AbsentLinks.
;; @data
(Inheritance (Concept "cat") (Concept "mammal"))
(Inheritance (Concept "dog") (Concept "mammal"))
(Inheritance (Concept "cow") (Concept "mammal"))
(Inheritance (Concept "cat") (Concept "pet"))
(Inheritance (Concept "dog") (Concept "wild"))
;; @query
(Get (Variable "$x")
  (And (Inheritance (Variable "$x") (Concept "mammal"))
       (Absent (Inheritance (Variable "$x") (Concept "pet")))
       (Absent (Inheritance (Variable "$x") (Concept "wild")))))
;; @expect
(Set (Concept "cow"))
