; Parity case "equal-executable", after OpenCog atomspace tests/query/buggy-equal-arithmetic.scm: EqualLink with a side to execute (an ExecutionOutputLink).
;; @data
(Member (Number "1") (Concept "nums"))
(Member (Number "3") (Concept "nums"))
;; @query
(Get (Variable "$n") (And (Member (Variable "$n") (Concept "nums")) (Equal (Variable "$n") (ExecutionOutput (GroundedSchema "scm: plus-one") (List (Number "2"))))))
;; @refused ExecutionOutputLink
