; Parity case "greater-than", after OpenCog atomspace tests/query/greater_than.scm: GreaterThanLink: a virtual, evaluated clause.
;; @data
(Member (Number "1") (Concept "nums"))
(Member (Number "3") (Concept "nums"))
;; @query
(Get (Variable "$n") (And (Member (Variable "$n") (Concept "nums")) (GreaterThan (Variable "$n") (Number "2"))))
;; @refused GreaterThanLink
