from churnclv.cli import main

main()
