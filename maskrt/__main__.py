from maskrt.cli import main

main()
