global using FluentValidation;
