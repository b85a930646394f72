; Parity case "unordered-stack", after OpenCog atomspace tests/query/stackmore-o-u.scm: ordered above unordered above ordered.
;; @data
(Member (Concept "m") (Set (Concept "s") (List (Concept "t1") (Concept "t2"))))
(Member (Concept "n") (Set (Concept "s") (List (Concept "t1") (Concept "t3"))))
(Member (Concept "o") (Set (Concept "u") (List (Concept "t1") (Concept "t4"))))
;; @query
(Get (VariableList (Variable "$a") (Variable "$b"))
  (Member (Variable "$a") (Set (List (Concept "t1") (Variable "$b")) (Concept "s"))))
;; @expect
(Set (List (Concept "m") (Concept "t2")) (List (Concept "n") (Concept "t3")))
