; Parity case "conjunction-three", after OpenCog atomspace tests/query/deduct-rules.scm: three clauses along a chain, a dead branch pruned.
;; @data
(Inheritance (Concept "A") (Concept "B"))
(Inheritance (Concept "B") (Concept "C"))
(Inheritance (Concept "C") (Concept "D"))
(Inheritance (Concept "X") (Concept "C"))
;; @query
(Get (VariableList (Variable "$x") (Variable "$y") (Variable "$z"))
  (And (Inheritance (Variable "$x") (Variable "$y"))
       (Inheritance (Variable "$y") (Variable "$z"))
       (Inheritance (Variable "$z") (Concept "D"))))
;; @expect
(Set (List (Concept "A") (Concept "B") (Concept "C")))
