global using FluentValidation;
global using StreamSpace.Contracts.Api;
